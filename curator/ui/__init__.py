"""The Gradio app: ``build_ui`` wires components to module-level handlers.

Gradio's usage analytics would call out to the internet; they are off unless the user
turns them on explicitly.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
