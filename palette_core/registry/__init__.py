"""The registry record (the only public source): its parser, the fidelity check of ``data/``
against it, and the registry's doses as text."""
