module swiftdeploy.dev/healthprobe

go 1.22
