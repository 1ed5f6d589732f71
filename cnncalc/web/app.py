"""The playground's server: one page, and a JSON API over the same calculator the CLI uses.
Every request is bounded (bytes, layers, nesting) so that a shared server stays responsive;
nothing a visitor types is run as code."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..errors import CnnCalcError
from ..language.expand import Limits
from .work import Pool, TooSlow

PAGE = Path(__file__).with_name("page.html")
ZOO = Path(__file__).resolve().parents[2] / "specs"  # the repository's zoo, when there
LIMITS = Limits(max_layers=5_000, max_depth=32, max_bytes=64 * 1024, max_line=2_000)
POOL = Pool()


def _error(e: CnnCalcError, status=400) -> JSONResponse:
    return JSONResponse(_failed(e), status_code=status)


def _failed(e: CnnCalcError) -> dict:
    return {"ok": False, "error": {"message": e.message, "line": e.line, "column": e.column,
                                   "hint": e.hint, "text": str(e)}}


class _Refused(CnnCalcError):
    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


async def _spec(request: Request) -> tuple[str, dict]:
    """The request's JSON, read no further than the limit; JSON only when sent as JSON, so
    that another site's form (text/plain) cannot post to a playground on localhost."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise _Refused(f"expected Content-Type application/json, received {kind or 'none'}",
                       415)
    body, limit = bytearray(), LIMITS.max_bytes + 1024
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _Refused(f"the request is over {limit:,} bytes; the playground takes a spec "
                           f"of at most {LIMITS.max_bytes:,}", 413)
    try:
        data = json.loads(body or b"{}")
        text = data["spec"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise CnnCalcError('expected JSON {"spec": "input 32x32x3 | conv 3x3x8"}') from None
    if not isinstance(text, str):
        raise CnnCalcError("'spec' should be text")
    for key in ("input", "memory"):
        if data.get(key) is not None and not isinstance(data[key], (str, int)):
            raise CnnCalcError(f"'{key}' should be text, such as "
                               + ("'64x64x3'" if key == "input" else "'16GiB'"))
    return text, data


def _summary(text: str, data: dict):
    from ..analysis.walk import analyse
    from ..api import with_input
    from ..language.expand import load
    network = load(text, "spec", LIMITS)
    if data.get("input"):
        network = with_input(network, str(data["input"]), option="input")
    return analyse(network, explain=bool(data.get("explain")), open_sizes=True)


def _guarded(fn, text: str, data: dict):
    """In the worker: (status, payload). A CnnCalcError is the answer (status 400); anything
    else past the limits (deep recursion, memory) is said as such, never a 500."""
    try:
        return 200, fn(text, data)
    except CnnCalcError as e:
        return 400, _failed(e)
    except RecursionError:
        return 400, _failed(CnnCalcError("the spec nests too deeply for the playground"))
    except MemoryError:
        return 413, _failed(CnnCalcError("the spec needs more memory than the playground has"))


def _analysis(text: str, data: dict) -> dict:
    """The table (HTML), the figure (SVG) and the footer's numbers of a spec."""
    from .. import fmt
    from ..render.draw import layout, svg
    from ..render.table import render
    summary = _summary(text, data)
    out = {"ok": True, "table": render(summary, "html"),
           "output": fmt.shape(summary.output),
           "params": summary.totals.params, "macs": summary.totals.macs,
           "svg": None, "fit": None}
    if not any(fmt.symbolic(n) for n in summary.network.input.shape):
        out["svg"] = svg(layout(summary))
    if data.get("explain"):
        out["explain"] = "\n".join(f"{r.index} {r.name}: {r.layer.describe()}\n    "
                                   + "\n    ".join(r.explain or []) for r in summary.rows)
    if data.get("memory"):
        from ..analysis.memory import fit
        out["fit"] = fit(summary, fmt.parse_bytes(str(data["memory"]), "memory"))
    return out


def _code(text: str, data: dict) -> dict:
    """The spec as a PyTorch file (text, no torch needed to write it)."""
    from ..interop.to_pytorch import to_pytorch_code
    return {"code": to_pytorch_code(_summary(text, data), source="the cnncalc playground")}


async def _answer(request: Request, fn):
    """(status, payload) of ``fn`` run in a worker, or the reason it was refused."""
    try:
        text, data = await _spec(request)
    except _Refused as e:
        return e.status, _failed(e)
    except CnnCalcError as e:
        return 400, _failed(e)
    try:
        return await POOL.run(_guarded, fn, text, data)
    except TooSlow:
        return 503, _failed(CnnCalcError(f"the spec took more than {POOL.limit:g} s to compute; "
                                         "the playground stops there"))


async def analyse_spec(request: Request) -> Response:
    status, out = await _answer(request, _analysis)
    return JSONResponse(out, status_code=status)


async def export_spec(request: Request) -> Response:
    status, out = await _answer(request, _code)
    if status != 200:
        return JSONResponse(out, status_code=status)
    return PlainTextResponse(out["code"], media_type="text/x-python")


async def zoo(request: Request) -> Response:
    names = sorted(p.stem for p in ZOO.glob("*.cnn")) if ZOO.is_dir() else []
    return JSONResponse(names)


async def zoo_spec(request: Request) -> Response:
    name = request.path_params["name"]
    path = ZOO / f"{name}.cnn"
    if not ZOO.is_dir() or path.parent != ZOO or not path.is_file():  # names only, no paths
        return PlainTextResponse(f"no zoo spec named {name!r}", status_code=404)
    return PlainTextResponse(path.read_text(encoding="utf-8"))


async def kinds(request: Request) -> Response:
    """Words the editor colours: layer kinds and their options."""
    from ..layers import KINDS
    options = sorted({w for cls in KINDS.values() for o in cls.options
                      for w in (getattr(o, "words", None) or (o.field,))
                      if isinstance(w, str) and w.isidentifier()})
    return JSONResponse({"kinds": sorted(KINDS), "options": options})


async def page(request: Request) -> Response:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


@asynccontextmanager
async def _lifespan(app):
    yield
    POOL.close()


def create_app() -> Starlette:
    return Starlette(lifespan=_lifespan, routes=[
        Route("/", page),
        Route("/api/analyse", analyse_spec, methods=["POST"]),
        Route("/api/export", export_spec, methods=["POST"]),
        Route("/api/zoo", zoo),
        Route("/api/zoo/{name}", zoo_spec),
        Route("/api/kinds", kinds),
    ])


app = create_app()
