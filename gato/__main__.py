from gato.cli import main; import sys; sys.exit(main())
