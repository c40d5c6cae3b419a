"""The Gradio app: ``build_ui`` wires components to module-level handlers."""
