package cuda

// WindowAttr is the prefix of the MaxPool window attributes the executor
// copies onto MaxPoolGrad (for the kernel tests).
const WindowAttr = windowAttr
