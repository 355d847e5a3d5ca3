"""The HTTP API and the draw-a-digit page, both on one loaded `Classifier`."""

from mnist_cnn.server.app import DEFAULT_MAX_BODY, create_app, serve

__all__ = ["DEFAULT_MAX_BODY", "create_app", "serve"]
