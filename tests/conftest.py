import os

os.environ.setdefault("INFOZOO_PROGRESS", "0")

import torch  # noqa: E402

torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
