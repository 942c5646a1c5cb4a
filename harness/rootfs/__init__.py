"""The contract between source/ and snapshot/: image info, tar members, readers."""
