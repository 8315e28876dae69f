from yolo_prune.app.cli import main

main()
