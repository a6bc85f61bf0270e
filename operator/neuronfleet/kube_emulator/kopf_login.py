"""A kopf login handler for the emulator, passed as an extra file to ``kopf run``.

kopf's default login reads the kubeconfig path that the ``kubernetes`` package computed at
import time, so a KUBECONFIG set later by a test is ignored. This handler reads the emulator's
URL from the environment when kopf logs in instead::

    KopfRunner(["run", "--standalone", "-A", operator_file, str(LOGIN_HANDLER_FILE)], ...)
"""

from __future__ import annotations

import os
from typing import Any

import kopf

__all__ = ["URL_ENV"]

URL_ENV = "NEURONFLEET_EMULATOR_URL"


@kopf.on.login()
def login_to_emulator(**_: Any) -> kopf.ConnectionInfo:
    """Connect to the emulator named by ``NEURONFLEET_EMULATOR_URL``."""
    return kopf.ConnectionInfo(server=os.environ[URL_ENV], insecure=True, default_namespace="default")
