"""DRF's JSON parser, with deep nesting refused like any other bad JSON."""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """json.loads raises RecursionError on deep nesting, which DRF does not catch (a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from exc
