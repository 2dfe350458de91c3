"""A run's processes: how they are started and join (launch.py, group.py, multiprocess.py), which strategy
they train with (strategies.py), and where the model's state lives among them (placement.py: the whole model
on each; sharding.py: FSDP2; zero.py: DeepSpeed ZeRO), behind the one ``Placement`` the loop, the trainer
and checkpoints use."""
