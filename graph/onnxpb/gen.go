// Package onnxpb holds the Go types of ONNX's protobuf messages (ModelProto,
// GraphProto, NodeProto, TensorProto, ...), generated from the onnx.proto
// that Debian's libonnx-dev installs (proto2 syntax, ONNX 1.12). Fields
// added by later ONNX versions arrive as unknown fields, which protobuf
// keeps on a round trip; package graph reads the few it needs (function
// overloads and attribute defaults) from them.
//
// To regenerate, with protoc and protoc-gen-go v1.36.10 on PATH:
//
//	go generate ./graph/onnxpb
package onnxpb

//go:generate protoc -I/usr/include/onnx --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/gotrain/gotrain/graph/onnxpb onnx.proto
