"""`minitorch_edu.utils`: where ported code finds `utils.data` (`torch.utils.data`)."""

from minitorch_edu.utils import data

__all__ = ["data"]
