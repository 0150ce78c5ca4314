//! A dense n-d array stored in a CPU libtorch tensor: what the binary loaders (IDX, NPY,
//! NPZ, safetensors) return.
//!
//! The loaders read each array's payload straight from the file (or the decompressor)
//! into the tensor's memory, so a loaded array costs one copy out of the file and no
//! more: [`DenseArray::view`] reads it as an `ndarray` view over that memory and
//! [`DenseArray::into_tensor`] hands the tensor itself to libtorch, neither copying.
//! Conversions to another element type ([`to_f32`](DenseArray::to_f32),
//! [`to_i64`](DenseArray::to_i64)) and [`from_array`](DenseArray::from_array) copy.

use mtl_core::{Error, Result};
use ndarray::{Array2, ArrayD, ArrayViewD, IxDyn};
use tch::{Device, Kind, Tensor};

/// The element types the loaders read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// `bool`, one byte holding 0 or 1.
    Bool,
    /// `u8`.
    U8,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// The libtorch kind.
    pub fn kind(self) -> Kind {
        match self {
            DType::Bool => Kind::Bool,
            DType::U8 => Kind::Uint8,
            DType::I8 => Kind::Int8,
            DType::I16 => Kind::Int16,
            DType::I32 => Kind::Int,
            DType::I64 => Kind::Int64,
            DType::F16 => Kind::Half,
            DType::BF16 => Kind::BFloat16,
            DType::F32 => Kind::Float,
            DType::F64 => Kind::Double,
        }
    }

    /// The NumPy-style name (`"float32"`, `"uint8"`...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    fn from_kind(kind: Kind) -> Option<Self> {
        Some(match kind {
            Kind::Bool => DType::Bool,
            Kind::Uint8 => DType::U8,
            Kind::Int8 => DType::I8,
            Kind::Int16 => DType::I16,
            Kind::Int => DType::I32,
            Kind::Int64 => DType::I64,
            Kind::Half => DType::F16,
            Kind::BFloat16 => DType::BF16,
            Kind::Float => DType::F32,
            Kind::Double => DType::F64,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust element type a [`DenseArray`] can be viewed as. Sealed: every bit pattern the
/// loaders accept for its [`DType`] is a valid value of the type.
pub trait ArrayElement: tch::kind::Element + Copy + sealed::Sealed {
    /// The matching element type.
    const DTYPE: DType;
}

macro_rules! array_element {
    ($($t:ty => $d:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl ArrayElement for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}
array_element!(bool => Bool, u8 => U8, i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64);

/// A dense, C-ordered n-d array whose storage is a contiguous CPU tensor that no one
/// else holds.
#[derive(Debug)]
pub struct DenseArray {
    // Invariants: on the CPU, contiguous, of kind `dtype.kind()`, of size `shape`, its
    // storage reachable through no other handle (so views can never see it change).
    tensor: Tensor,
    dtype: DType,
    shape: Vec<usize>,
}

impl DenseArray {
    /// A zero-filled array; fails when the element count or byte size overflows.
    pub(crate) fn zeros(dtype: DType, shape: &[usize]) -> Result<Self> {
        let bytes = byte_len(dtype, shape).ok_or_else(|| {
            Error::shape(
                "DenseArray",
                "a size that fits in memory",
                format!("{shape:?} of {dtype}"),
            )
        })?;
        if bytes > isize::MAX as usize {
            return Err(Error::shape(
                "DenseArray",
                "a size that fits in memory",
                format!("{bytes} bytes"),
            ));
        }
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        // Zeros rather than uninitialised memory: the payload is then read into
        // initialised bytes.
        let tensor = Tensor::f_zeros(&dims, (dtype.kind(), Device::Cpu))?;
        Ok(DenseArray {
            tensor,
            dtype,
            shape: shape.to_vec(),
        })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw bytes of the payload, in native byte order.
    pub fn as_bytes(&self) -> &[u8] {
        let len = self.len() * self.dtype.size();
        if len == 0 {
            return &[];
        }
        // SAFETY: by the invariants the tensor is a contiguous CPU tensor of `len`
        // initialised bytes, alive as long as `self`, and mutated by no one while
        // borrowed (no other handle exists; `bytes_mut` needs `&mut self`).
        unsafe { std::slice::from_raw_parts(self.tensor.data_ptr() as *const u8, len) }
    }

    /// The raw bytes of the payload, for the loaders to fill.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len() * self.dtype.size();
        if len == 0 {
            return &mut [];
        }
        // SAFETY: as in `as_bytes`, and `&mut self` makes the borrow exclusive. Every
        // byte pattern is valid for the tensor; bool payloads are checked by the loaders
        // (`check_bool`) before any `bool` view is made.
        unsafe { std::slice::from_raw_parts_mut(self.tensor.data_ptr() as *mut u8, len) }
    }

    /// Reverses the byte order of every element (for big-endian payloads).
    pub(crate) fn swap_bytes(&mut self) {
        let size = self.dtype.size();
        if size > 1 {
            for chunk in self.bytes_mut().chunks_exact_mut(size) {
                chunk.reverse();
            }
        }
    }

    /// For a bool array: the index of the first byte that is neither 0 nor 1.
    pub(crate) fn first_invalid_bool(&self) -> Option<usize> {
        if self.dtype != DType::Bool {
            return None;
        }
        self.as_bytes().iter().position(|&b| b > 1)
    }

    /// The array as an `ndarray` view of its own memory (no copy). The element type
    /// must match: `T::DTYPE == self.dtype()`.
    ///
    /// ```
    /// use mtl_data::DenseArray;
    /// let a = DenseArray::from_array(&ndarray::array![[1u8, 2], [3, 4]].into_dyn())?;
    /// assert_eq!(a.view::<u8>()?[[1, 0]], 3);
    /// assert!(a.view::<f32>().is_err());
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn view<T: ArrayElement>(&self) -> Result<ArrayViewD<'_, T>> {
        if T::DTYPE != self.dtype {
            return Err(Error::config(format!(
                "cannot view a {} array as {}",
                self.dtype,
                T::DTYPE
            )));
        }
        let n = self.len();
        let slice: &[T] = if n == 0 {
            &[]
        } else {
            let ptr = self.tensor.data_ptr() as *const T;
            if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
                // libtorch allocates 64-byte aligned storage; this guards the invariant.
                return Err(Error::config("tensor storage is not aligned for its type"));
            }
            // SAFETY: the tensor is contiguous with `n` initialised elements of a type
            // whose every loaded bit pattern is valid for `T` (bool bytes are checked to
            // be 0 or 1 on load), aligned (checked above), alive and unchanged while
            // `self` is borrowed.
            unsafe { std::slice::from_raw_parts(ptr, n) }
        };
        ArrayViewD::from_shape(IxDyn(&self.shape), slice)
            .map_err(|e| Error::shape("DenseArray::view", format!("{:?}", self.shape), e))
    }

    /// The tensor holding the array, with the array's shape (no copy).
    pub fn into_tensor(self) -> Tensor {
        self.tensor
    }

    /// A copy of an `ndarray` array: one `memcpy` when it is in standard (C) layout,
    /// an element-by-element gather otherwise.
    pub fn from_array<T: ArrayElement>(a: &ArrayD<T>) -> Result<Self> {
        let mut out = DenseArray::zeros(T::DTYPE, a.shape())?;
        let dst = out.bytes_mut();
        match a.as_slice() {
            Some(src) => {
                // SAFETY: `src` is `len` plain elements; viewing their bytes is sound.
                let bytes = unsafe {
                    std::slice::from_raw_parts(
                        src.as_ptr() as *const u8,
                        std::mem::size_of_val(src),
                    )
                };
                dst.copy_from_slice(bytes);
            }
            None => {
                let size = T::DTYPE.size();
                for (chunk, v) in dst.chunks_exact_mut(size).zip(a.iter()) {
                    // SAFETY: `v` is one plain element of `size` bytes.
                    let bytes =
                        unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size) };
                    chunk.copy_from_slice(bytes);
                }
            }
        }
        Ok(out)
    }

    /// A private copy of a tensor (moved to the CPU and made contiguous), so that no
    /// other handle can change what views of the array see.
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let dtype = DType::from_kind(t.f_kind()?)
            .ok_or_else(|| Error::config(format!("unsupported tensor kind {:?}", t.kind())))?;
        let tensor = tch::no_grad(|| -> Result<Tensor> {
            let src = t.f_to_device(Device::Cpu)?.f_contiguous()?;
            let mut own = src.f_zeros_like()?.f_contiguous()?;
            own.f_copy_(&src)?;
            Ok(own)
        })?;
        let shape = tensor.size().iter().map(|&d| d as usize).collect();
        let array = DenseArray {
            tensor,
            dtype,
            shape,
        };
        if let Some(i) = array.first_invalid_bool() {
            return Err(Error::config(format!(
                "bool tensor holds byte {} at element {i}",
                array.as_bytes()[i]
            )));
        }
        Ok(array)
    }

    /// The values as `f32` (a copy, converting any element type).
    pub fn to_f32(&self) -> Result<ArrayD<f32>> {
        self.converted(Kind::Float)
    }

    /// The values as `i64` (a copy; floats are truncated toward zero).
    pub fn to_i64(&self) -> Result<ArrayD<i64>> {
        self.converted(Kind::Int64)
    }

    /// The values as an `f32` matrix `[shape[0], product of the rest]` (a copy): images
    /// `[n, h, w]` become rows of `h·w` pixels. A 1-d array becomes one column.
    pub fn to_f32_rows(&self) -> Result<Array2<f32>> {
        let Some((&n, rest)) = self.shape.split_first() else {
            return Err(Error::shape(
                "DenseArray::to_f32_rows",
                "at least one dimension",
                "a scalar",
            ));
        };
        let width = rest.iter().product::<usize>();
        self.to_f32()?
            .into_shape_with_order((n, width))
            .map_err(|e| Error::shape("DenseArray::to_f32_rows", format!("[{n}, {width}]"), e))
    }

    fn converted<T: ArrayElement>(&self, kind: Kind) -> Result<ArrayD<T>> {
        let flat = self.tensor.f_to_kind(kind)?.f_reshape([-1])?;
        let values = Vec::<T>::try_from(&flat)?;
        ArrayD::from_shape_vec(IxDyn(&self.shape), values)
            .map_err(|e| Error::shape("DenseArray conversion", format!("{:?}", self.shape), e))
    }
}

fn byte_len(dtype: DType, shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
}

/// The payload size in bytes of an array of `shape` and `dtype`, `None` on overflow.
pub(crate) fn payload_len(dtype: DType, shape: &[usize]) -> Option<u64> {
    byte_len(dtype, shape).map(|b| b as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn round_trips_through_a_tensor_without_changing_values() {
        let a = array![[1.5f32, -2.0, 3.25], [0.0, 4.0, -0.5]].into_dyn();
        let d = DenseArray::from_array(&a).unwrap();
        assert_eq!(
            (d.dtype(), d.shape(), d.len()),
            (DType::F32, &[2, 3][..], 6)
        );
        assert_eq!(d.view::<f32>().unwrap(), a.view());
        assert_eq!(
            d.to_i64().unwrap(),
            array![[1i64, -2, 3], [0, 4, 0]].into_dyn()
        );
        let t = d.into_tensor();
        assert_eq!(t.size(), [2, 3]);
        assert_eq!(t.double_value(&[1, 2]), -0.5);
    }

    #[test]
    fn non_standard_layout_is_gathered() {
        let a = array![[1i64, 2, 3], [4, 5, 6]].reversed_axes().into_dyn();
        let d = DenseArray::from_array(&a).unwrap();
        assert_eq!(d.view::<i64>().unwrap(), a.view());
        assert_eq!(
            d.to_f32_rows().unwrap(),
            array![[1.0f32, 4.0], [2.0, 5.0], [3.0, 6.0]]
        );
    }

    #[test]
    fn swap_bytes_and_bool_checks() {
        let mut d = DenseArray::zeros(DType::I32, &[2]).unwrap();
        d.bytes_mut().copy_from_slice(&[0, 0, 1, 2, 0, 0, 0, 7]);
        d.swap_bytes();
        assert_eq!(
            d.view::<i32>().unwrap().iter().copied().collect::<Vec<_>>(),
            [0x0102, 7]
        );
        let mut b = DenseArray::zeros(DType::Bool, &[3]).unwrap();
        b.bytes_mut().copy_from_slice(&[1, 0, 2]);
        assert_eq!(b.first_invalid_bool(), Some(2));
        assert!(DenseArray::zeros(DType::F64, &[usize::MAX, 2]).is_err());
        let empty = DenseArray::zeros(DType::F32, &[0, 4]).unwrap();
        assert!(empty.is_empty() && empty.view::<f32>().unwrap().is_empty());
    }

    #[test]
    fn from_tensor_copies_and_keeps_kind() {
        let t = Tensor::from_slice(&[1u8, 2, 3, 4]).reshape([2, 2]);
        let d = DenseArray::from_tensor(&t).unwrap();
        let _ = t.shallow_clone().fill_(9);
        assert_eq!(d.view::<u8>().unwrap()[[1, 1]], 4);
        assert!(DenseArray::from_tensor(
            &Tensor::from_slice(&[1.0f32]).to_kind(Kind::ComplexFloat)
        )
        .is_err());
    }
}
