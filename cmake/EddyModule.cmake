# eddy_module(NAME <name> DEPS <targets...>)
# One library target per top-level module: sources are <module>/src/*.cc, the public headers live
# in <module>/include/eddy/. Sources are globbed so that new files need no CMake edits.
function(eddy_module)
  cmake_parse_arguments(M "" "NAME" "DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/src/*.cc"
       "${CMAKE_CURRENT_SOURCE_DIR}/src/*.c")
  if(NOT sources)
    # A module with no sources yet is header-only.
    add_library(eddy_${M_NAME} INTERFACE)
    add_library(eddy::${M_NAME} ALIAS eddy_${M_NAME})
    target_include_directories(eddy_${M_NAME} INTERFACE "${CMAKE_CURRENT_SOURCE_DIR}/include")
    target_link_libraries(eddy_${M_NAME} INTERFACE ${M_DEPS})
    return()
  endif()
  add_library(eddy_${M_NAME} STATIC ${sources})
  add_library(eddy::${M_NAME} ALIAS eddy_${M_NAME})
  target_include_directories(eddy_${M_NAME} PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}/include"
                             PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/src")
  target_link_libraries(eddy_${M_NAME} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS} eddy_warnings)
endfunction()
