"""Local CloudFormation: read a cloud assembly, resolve its intrinsics and create each stack's resources in moto."""

__all__ = ["assembly", "deployer", "intrinsics", "resources"]
