"""The playground's server: one page, and a JSON API over the same calculator the CLI uses.
Every request is bounded (bytes, layers, nesting) so that a shared server stays responsive;
nothing a visitor types is run as code."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..errors import CnnCalcError
from ..language.expand import Limits

PAGE = Path(__file__).with_name("page.html")
ZOO = Path(__file__).resolve().parents[2] / "specs"  # the repository's zoo, when there
LIMITS = Limits(max_layers=5_000, max_depth=32, max_bytes=64 * 1024, max_line=2_000)


def _error(e: CnnCalcError, status=400) -> JSONResponse:
    return JSONResponse({"ok": False, "error": {
        "message": e.message, "line": e.line, "column": e.column, "hint": e.hint,
        "text": str(e)}}, status_code=status)


async def _spec(request: Request) -> tuple[str, dict]:
    body = await request.body()
    if len(body) > LIMITS.max_bytes + 1024:
        raise CnnCalcError(f"the spec is {len(body):,} bytes; the playground takes at most "
                           f"{LIMITS.max_bytes:,}")
    try:
        import json
        data = json.loads(body or b"{}")
        text = data["spec"]
    except (ValueError, KeyError, TypeError):
        raise CnnCalcError('expected JSON {"spec": "input 32x32x3 | conv 3x3x8"}') from None
    if not isinstance(text, str):
        raise CnnCalcError("'spec' should be text")
    return text, data


def _summary(text: str, data: dict):
    from ..analysis.walk import analyse
    from ..api import with_input
    from ..language.expand import load
    network = load(text, "spec", LIMITS)
    if data.get("input"):
        network = with_input(network, str(data["input"]))
    return analyse(network, explain=bool(data.get("explain")), open_sizes=True)


async def analyse_spec(request: Request) -> Response:
    """The table (HTML), the figure (SVG) and the footer's numbers of a spec; or where it is
    wrong."""
    try:
        text, data = await _spec(request)
        summary = _summary(text, data)
    except CnnCalcError as e:
        return _error(e)
    from .. import fmt
    from ..render.draw import layout, svg
    from ..render.table import render
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
        try:
            from ..analysis.memory import fit
            out["fit"] = fit(summary, fmt.parse_bytes(str(data["memory"])))
        except CnnCalcError as e:
            return _error(e)
    return JSONResponse(out)


async def export_spec(request: Request) -> Response:
    """The spec as a PyTorch file (text, no torch needed to write it)."""
    try:
        text, data = await _spec(request)
        from ..interop.to_pytorch import to_pytorch_code
        code = to_pytorch_code(_summary(text, data), source="the cnncalc playground")
    except CnnCalcError as e:
        return _error(e)
    return PlainTextResponse(code, media_type="text/x-python")


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


def create_app() -> Starlette:
    return Starlette(routes=[
        Route("/", page),
        Route("/api/analyse", analyse_spec, methods=["POST"]),
        Route("/api/export", export_spec, methods=["POST"]),
        Route("/api/zoo", zoo),
        Route("/api/zoo/{name}", zoo_spec),
        Route("/api/kinds", kinds),
    ])


app = create_app()
