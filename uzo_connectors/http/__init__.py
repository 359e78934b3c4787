"""The declarative REST connector (``http``): resources, auth, pagination, retries, SSRF checks.

Modules: ``config`` (the pydantic models), ``transport`` (SSRF-checked, retrying,
rate-limited HTTP shared with ``uzo_connectors.genai``), ``auth``, ``pagination``,
``jsonpath``, ``templates``, ``records`` (JSON -> Arrow), ``reader``, ``sink``,
``connector`` (:class:`~uzo_connectors.http.connector.HttpConnector`) and
``specs`` (declarative specs for public APIs, ``load_spec(name)``).
"""
