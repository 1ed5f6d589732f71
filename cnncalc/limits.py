"""How large anything cnncalc reads or computes may be, in one place. Each limit is checked
where the value is made (the parser, a rule, a reader), so that no input can take unbounded
time or memory, and going past one is a clear error naming it."""

MAX_SIZE = 10**18          # any size, count or number in a spec; computed exactly up to this
MAX_INTERMEDIATE = 10**36  # a value inside an expression, before it is divided back down
MAX_TERMS = 256            # operators in one value ('1+1+...'): evaluation stays shallow
MAX_BYTES_TEXT = 2**80     # a memory size such as '16GiB' (a yobibyte: far above any device)
MAX_ADAPTIVE = 100_000     # an adaptive pool's output along one axis
SIZES_CHUNK = 1 << 15     # input sizes one pass of 'cnncalc sizes' holds (cache-sized: fastest)
MAX_SIZES = 10_000_000     # input sizes one 'cnncalc sizes' run tries
MAX_FOREIGN_LAYERS = 100_000   # layers read from an ONNX, Keras or Darknet file
MAX_ARCHIVE_BYTES = 64 << 20   # a .keras archive's config.json, read at most this far
MAX_WEIGHTS = 1 << 34          # values in one weight of an ONNX file (64 GiB of float32)


def power(n: int) -> str:
    """10**18 as '10^18' for messages."""
    text = str(n)
    return f"10^{len(text) - 1}" if text.strip("0") == "1" else f"{n:,}"
