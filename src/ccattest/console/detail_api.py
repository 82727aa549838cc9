"""The read API behind the site and job pages: `/api/v1/sites/{name}` and a receipt's
check and download."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse, Response

from ..timeutil import utcnow
from .detail import NotFound, check_receipt, receipt_entry, receipt_file, site_detail
from .views import Federation

API = "/api/v1"


def _not_found(error: NotFound) -> JSONResponse:
    return JSONResponse({"error": error.message, "expected": error.expected,
                         "hint": error.hint}, status_code=404)


def add_detail_routes(app: FastAPI, federation: Federation) -> None:
    @app.get(f"{API}/sites/{{name}}")
    def site(name: str = Path(max_length=200),
             by: str | None = Query(None, max_length=200)) -> Any:
        """One site: how each peer judges it, its latest verdict with every claim and
        reason, its status history (from the judging site's record, the server's by
        default) and the collateral its verifier holds with expiry dates."""
        try:
            return site_detail(federation, name, by=by, now=utcnow())
        except NotFound as error:
            return _not_found(error)

    @app.get(f"{API}/receipts/{{index}}/verify")
    def verify(index: int = Path(ge=0)) -> Any:
        """Check the receipt at this record index as `ccattest audit receipt verify`
        does (every participant's cosignature required); a failure is a 400 saying why."""
        try:
            return check_receipt(federation, index, now=utcnow())
        except NotFound as error:
            return _not_found(error)

    @app.get(f"{API}/receipts/{{index}}/receipt.jwt")
    def download(index: int = Path(ge=0)) -> Response:
        """The receipt itself, to keep and check offline with the federation's JWKS."""
        try:
            token, name = receipt_file(receipt_entry(federation, index))
        except NotFound as error:
            return _not_found(error)
        return Response(token + "\n", media_type="application/jwt",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
