"""The one error a pipeline package can raise: what is wrong, and where."""


class SpecError(ValueError):
    """The upload is not a pipeline kfdash can accept. The message is shown to the user
    as it is (in the API's error body and next to the upload field), so it names the
    problem and its place: the archive member, the YAML line, the task."""
