"""`Recent` lives in the store seam (`fengqiao.runtime.store.recent`); named here for the tracker's
handlers, which import it from this place."""

from fengqiao.runtime.store.recent import Recent

__all__ = ["Recent"]
