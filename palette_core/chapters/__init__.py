"""Helpers of the book's chapters: one module per chapter of ``book/`` holding what only that
chapter shows, and ``common`` for what every chapter uses. The library never imports them."""
