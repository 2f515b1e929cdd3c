package vk

/*
#include <stdint.h>
*/
import "C"

import "fmt"

// isabGoDebugMessage receives the debug messenger's messages from C (see
// isabDebugCallback in loader.go). It lives in its own file because cgo allows
// only declarations in the preamble of a file with //export.
//
//export isabGoDebugMessage
func isabGoDebugMessage(severity C.uint32_t, id *C.char, msg *C.char) {
	level := "warning"
	if severity >= 0x1000 {
		level = "error"
	}
	debugMu.Lock()
	debugMsgs = append(debugMsgs, fmt.Sprintf("%s [%s] %s", level, C.GoString(id), C.GoString(msg)))
	debugMu.Unlock()
}
