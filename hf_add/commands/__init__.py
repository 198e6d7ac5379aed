"""The ``hf-add`` programs, one module per command; each has ``HELP`` (its line in ``hf-add --help``) and
``main(argv)``. ``hf_add.cli`` only dispatches to them, and to the commands other packages register under the
``hf_add.commands`` entry-point group."""
