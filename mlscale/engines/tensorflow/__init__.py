"""The TensorFlow engine (`Workload.engine` / `engine_for` == "tensorflow").

TensorFlow's C++ start-up notices (oneDNN, CPU features) go to stderr on import; they are
silenced here unless the user set TF_CPP_MIN_LOG_LEVEL, so that an error stays one line."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
