from dataengine.cli import main

raise SystemExit(main())
