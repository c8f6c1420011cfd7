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
