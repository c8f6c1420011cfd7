// A websocket that reconnects with backoff and hands each JSON message to a callback.
// Shared by every live page; the server sends the current state on connect.

export function subscribe(path, onEvent, { onOpen } = {}) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let delay = 500;
  let socket;
  let stopped = false;
  function connect() {
    socket = new WebSocket(`${scheme}://${location.host}${path}`);
    socket.addEventListener("open", () => { delay = 500; onOpen?.(); });
    socket.addEventListener("message", (message) => onEvent(JSON.parse(message.data)));
    socket.addEventListener("close", (event) => {
      if (stopped || event.code === 4403) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    });
  }
  connect();
  return () => { stopped = true; socket?.close(); };
}
