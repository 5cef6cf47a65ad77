// The three PDB procedures of the DiffSketch plug-in and their run function. Argument names are
// the batch interface (Script-Fu calls them by name): keep them stable; README.md ("The GIMP 3 plug-in") lists
// them.
#pragma once

#include <libgimp/gimp.h>

namespace dsk::gimp {

inline constexpr const char* kInpaintProc = "plug-in-diffsketch-inpaint";
inline constexpr const char* kGenerateProc = "plug-in-diffsketch-generate";
inline constexpr const char* kInterpolateProc = "plug-in-diffsketch-interpolate";
inline constexpr const char* kPlugInBinary = "diffsketch";

enum class Operation { Inpaint, Generate, Interpolate };

// Adds the procedure's arguments and return value (plugin.cpp).
void add_arguments(GimpProcedure* procedure, Operation op);

// Runs one procedure: dialog (interactive), validation, the engine, new layers in one undo group.
// Every failure returns GIMP_PDB_EXECUTION_ERROR with a message saying what was wrong.
GimpValueArray* run_operation(Operation op, GimpProcedure* procedure, GimpRunMode run_mode, GimpImage* image,
                              GimpDrawable** drawables, GimpProcedureConfig* config);

}  // namespace dsk::gimp
