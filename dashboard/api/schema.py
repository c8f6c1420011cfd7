"""OpenAPI descriptions of kfdash's authentication classes (for drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "dashboard.auth.api.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A personal API token (kfd_…) from the API tokens page."}


class OIDCBearerScheme(OpenApiAuthenticationExtension):
    target_class = "dashboard.auth.api.OIDCBearerAuthentication"
    name = "oidcToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access or ID token from the OIDC provider (OIDC mode)."}


class TrustedHeaderScheme(OpenApiAuthenticationExtension):
    target_class = "dashboard.auth.api.TrustedHeaderAuthentication"
    name = "trustedHeader"

    def get_security_definition(self, auto_schema):
        from django.conf import settings

        return {"type": "apiKey", "in": "header", "name": settings.KFDASH_USERID_HEADER,
                "description": "Set by the authenticating proxy (header mode only)."}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "dashboard.auth.api.CsrfSessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid",
                "description": "The browser session; unsafe methods need the CSRF token."}


ERROR_CODES = {
    "400": "Bad input: the message says what and where.",
    "401": "No credentials, or credentials that are not valid.",
    "403": "The namespace is visible to the caller, but the action needs a higher role.",
    "404": "No such object, or one in a namespace the caller may not view.",
}
ERROR_SCHEMA = {
    "type": "object", "required": ["error", "code", "message", "details"],
    "description": "The error body of every API here (the Kubeflow Pipelines server's).",
    "properties": {
        "error": {"type": "string"}, "message": {"type": "string"},
        "code": {"type": "integer", "description": "The gRPC status code."},
        "details": {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
    },
}


def document_errors(result, generator, request, public):
    """Every authenticated operation can answer the project's error body with 400, 401,
    403 and 404 (one exception handler renders them all); say so where a view did not."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if not any(operation.get("security", [{}])):  # open to anyone (healthz)
                continue
            for code, description in ERROR_CODES.items():
                operation["responses"].setdefault(code, {
                    "description": description,
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}},
                })
    return result
