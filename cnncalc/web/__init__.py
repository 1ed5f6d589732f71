"""The playground: 'cnncalc serve' (Starlette, the 'serve' extra)."""
