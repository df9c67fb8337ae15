"""Helpers every layer uses: Helm releases pinned by stacks/versions.py (helm.py) and the image
lists of every layer from the committed render data (images_plan.py, images_data.json). Waits for nothing."""
