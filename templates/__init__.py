"""The Jinja templates of the tutorial; shipped inside the wheel as ``mnist_core.templates``."""
