"""Helpers of the book's chapters, one module per chapter; the library never imports them."""
