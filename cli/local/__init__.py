"""Local mode: run a synthesized cloud assembly on one machine, against moto, without Docker."""
