#include "kpid/app/app.h"

int main(int argc, char** argv) { return kpid::app::main(argc, argv); }
