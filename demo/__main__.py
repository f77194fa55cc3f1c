from demo.pipeline import main

raise SystemExit(main())
