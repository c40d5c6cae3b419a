"""Pure pipeline stages over plain data. Nothing here imports gradio or sqlalchemy."""
