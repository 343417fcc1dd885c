"""Apps for people rather than scripts: the Gradio demo (and its Space) and the latent map command's job."""
