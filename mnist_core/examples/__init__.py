"""The bundled example images (package data)."""
