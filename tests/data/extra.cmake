# test_data_threads makes pthread_create fail (a thread limit) through the linker's --wrap
target_link_options(test_data_threads PRIVATE -Wl,--wrap=pthread_create)
