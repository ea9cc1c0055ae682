from symcompile.cli import main

raise SystemExit(main())
