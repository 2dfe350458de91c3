"""What `make test-matrix` varies for the tests that compare numbers: threads per process and the kernels.

ATEN_CPU_CAPABILITY (default, avx2, avx512) reaches every process through the environment as it is; the
thread count is LLMFT_TEST_THREADS (1 unless set), which the tests that start runs put in their configs
(`training.num_threads`) and their processes' OMP_NUM_THREADS, and conftest gives the test process itself.
"""

from __future__ import annotations

import os

THREADS = int(os.environ.get("LLMFT_TEST_THREADS", "1"))


def thread_env() -> dict[str, str]:
    """The environment variables that fix a test subprocess's threads to THREADS."""
    return {"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}
