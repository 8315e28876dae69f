from yolo_prune.cli import main

main()
