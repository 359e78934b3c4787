"""The declarative REST connector (``http``): resources, auth, pagination, retries, SSRF checks.

Modules: ``config`` (the pydantic models), ``guards`` (what a config may put in a
URL, header or query), ``transport`` (SSRF-checked, retrying, rate-limited HTTP
shared with ``uzo_connectors.genai``), ``pinning`` (connections go only to the
addresses the SSRF check approved), ``auth``, ``pagination``, ``jsonpath``
(RFC 9535), ``templates`` (sandboxed Jinja), ``records`` (JSON -> Arrow), ``reader``, ``sink``,
``connector`` (:class:`~uzo_connectors.http.connector.HttpConnector`) and
``specs`` (declarative specs for public APIs, ``load_spec(name)``).
"""
