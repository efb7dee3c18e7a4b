"""minitorch_edu: the machinery under torch.nn and torch.optim, written out to be read.

import minitorch_edu as mt

x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = (x * x).sum()
y.backward()
x.grad            # tensor([2., 4., 6.])

The public names are defined in minitorch_edu/api.py and imported on first use
(minitorch_edu/lazy.py), so that `import minitorch_edu` does not wait for torch.
"""

from typing import TYPE_CHECKING

from minitorch_edu.lazy import load_on_first_use

__version__ = "0.1.0"

__getattr__, __dir__ = load_on_first_use(globals(), "minitorch_edu.api")

if TYPE_CHECKING:  # editors and type checkers see the whole API here
    from minitorch_edu.api import *  # noqa: F403
