// Compile-only stand-in for github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc, which the Go module
// proxy refuses. It declares only what flannel's tencent-vpc backend references; every call fails.
module github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc

go 1.26.8
