// Force-included (-include) by tickinfer_torch_syntax_check only: lets clang++-14 parse LibTorch 1.13's headers
// in C++20, for -fsyntax-only analysis (-Wthread-safety) of tickinfer's Torch sources. Never used for code that is
// compiled to objects.
//
// ATen/core/List.h moves a std::vector<c10::IValue> while IValue is incomplete; libstdc++ 12 makes vector's members
// constexpr in C++20 (_GLIBCXX20_CONSTEXPR), and clang instantiates constexpr members where they are used, so it
// rejects the header (pytorch/pytorch#93978, fixed in LibTorch 2.1). Including <vector> first with that macro
// empty makes std::vector's members ordinary templates, instantiated at the end of the translation unit, when
// IValue is complete. vector<bool>'s __fill_a1 overload is renamed while <vector> is read: <string> has already
// declared it constexpr (only a definition would be missing, and -fsyntax-only links nothing).
#pragma once
#include <string>
#pragma push_macro("_GLIBCXX20_CONSTEXPR")
#undef _GLIBCXX20_CONSTEXPR
#define _GLIBCXX20_CONSTEXPR
#define __fill_a1 __tickinfer_bvector_fill_a1
#include <vector>
#undef __fill_a1
#pragma pop_macro("_GLIBCXX20_CONSTEXPR")
