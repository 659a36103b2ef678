"""Charts and labels shared by the book's chapters and the interim reports; they take data
frames and the design, never read files, and import nothing of ``chapters``, ``interim`` or
``results``."""
