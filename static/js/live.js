// A websocket that reconnects with backoff and hands each JSON message to a callback.
// Shared by every live page; the server sends the current state on connect, so a page
// that finds it missed an event calls ``resync`` (the callback's second argument): the
// socket is opened again at once and the page gets that state afresh.

export function subscribe(path, onEvent, { onOpen } = {}) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let delay = 500;
  let socket;
  let stopped = false;
  function connect() {
    socket = new WebSocket(`${scheme}://${location.host}${path}`);
    socket.addEventListener("open", () => { delay = 500; onOpen?.(); });
    const current = socket;
    const resync = () => {
      if (current !== socket || current.readyState > WebSocket.OPEN) return;
      delay = 0;
      current.close();
    };
    socket.addEventListener("message", (message) => onEvent(JSON.parse(message.data), resync));
    socket.addEventListener("close", (event) => {
      if (stopped || event.code === 4403) return;
      setTimeout(connect, delay);
      delay = Math.min(Math.max(delay * 2, 500), 15000);
    });
  }
  connect();
  return () => { stopped = true; socket?.close(); };
}
