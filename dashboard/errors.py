"""The one error type of everything that drives a platform (namespace backends,
spawners, engines): the message is for users; ``retryable`` says whether trying
again may help (the API answers 503 then, else 409)."""


class PlatformError(Exception):
    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
